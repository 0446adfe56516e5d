DROP TABLE operator_events;
