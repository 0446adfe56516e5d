DROP INDEX deliveries_open_due;
CREATE INDEX deliveries_due ON deliveries (state, due_us);
