DROP TABLE target_health;
