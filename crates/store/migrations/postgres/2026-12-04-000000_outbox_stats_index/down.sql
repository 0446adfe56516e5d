DROP INDEX deliveries_stats;
