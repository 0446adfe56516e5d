UPDATE deliveries SET state = 'dead' WHERE state = 'superseded';
