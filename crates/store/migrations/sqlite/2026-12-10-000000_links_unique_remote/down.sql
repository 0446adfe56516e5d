DROP INDEX links_remote;
