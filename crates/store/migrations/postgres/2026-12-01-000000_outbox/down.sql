DROP TABLE links;
DROP TABLE delivery_attempts;
DROP TABLE deliveries;
