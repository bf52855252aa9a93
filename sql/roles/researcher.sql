-- The read-only researcher role (PostgreSQL only; applied by migration 0003).
--
-- relief_researcher is a NOLOGIN group role: give people their own LOGIN role and make
-- them members (CREATE ROLE alice LOGIN IN ROLE relief_researcher). It reads the
-- results and dq schemas, their tables and views (v_latest_*), and tables created there
-- later by the migrating user; it has nothing in staging, quarantine, core or analysis.
--
-- Roles are cluster-wide while migrations run per database: creation is idempotent, and
-- a concurrent creation by another database's migration is tolerated.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'relief_researcher') THEN
        BEGIN
            CREATE ROLE relief_researcher NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database's migration created it first
        END;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA results, dq TO relief_researcher;
GRANT SELECT ON ALL TABLES IN SCHEMA results, dq TO relief_researcher;
ALTER DEFAULT PRIVILEGES IN SCHEMA results, dq GRANT SELECT ON TABLES TO relief_researcher;

REVOKE ALL ON SCHEMA staging, quarantine, core, analysis FROM relief_researcher;
REVOKE ALL ON ALL TABLES IN SCHEMA staging, quarantine, core, analysis FROM relief_researcher;
