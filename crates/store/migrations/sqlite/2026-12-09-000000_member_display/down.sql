ALTER TABLE group_members DROP COLUMN member_display;
