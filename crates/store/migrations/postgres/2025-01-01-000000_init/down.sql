-- Reverts the initial schema: drops every table, children first.
DROP TABLE group_members;
DROP TABLE groups;
DROP TABLE users;
DROP TABLE api_keys;
DROP TABLE tenants;
