-- What a group's member is called, kept on the membership row: the user's displayName (else its
-- userName) or the group's displayName, as the member carries it in the group's `members`
-- (RFC 7643 §4.2 `display`). Written when the member is added and rewritten when the member is
-- renamed, so that reading a group of 100,000 members is a scan of its rows, not 100,000 probes
-- of `users` (bench/RESULTS.md). The type is resolved the same way: it is what the member is.
ALTER TABLE group_members ADD COLUMN member_display TEXT;
UPDATE group_members SET
    member_type = CASE
        WHEN EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = group_members.tenant_id AND u.id = group_members.member_id) THEN 'User'
        WHEN EXISTS (SELECT 1 FROM groups g WHERE g.tenant_id = group_members.tenant_id AND g.id = group_members.member_id) THEN 'Group'
        ELSE member_type
    END,
    member_display = COALESCE(
        (SELECT COALESCE(u.display_name, u.user_name) FROM users u
          WHERE u.tenant_id = group_members.tenant_id AND u.id = group_members.member_id),
        (SELECT g.display_name FROM groups g
          WHERE g.tenant_id = group_members.tenant_id AND g.id = group_members.member_id));
