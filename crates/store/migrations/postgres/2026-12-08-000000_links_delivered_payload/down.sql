ALTER TABLE links DROP COLUMN delivered_payload;
