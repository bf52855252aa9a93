-- Undo sql/roles/researcher.sql in this database (migration 0003's downgrade). The role
-- itself is cluster-wide and other databases may use it, so it is not dropped.
ALTER DEFAULT PRIVILEGES IN SCHEMA results, dq REVOKE SELECT ON TABLES FROM relief_researcher;
REVOKE SELECT ON ALL TABLES IN SCHEMA results, dq FROM relief_researcher;
REVOKE USAGE ON SCHEMA results, dq FROM relief_researcher;
