DROP TABLE target_problems;
