UPDATE deliveries SET state = 'dead' WHERE state = 'superseded';
DROP INDEX deliveries_dead;
