-- Run by the postgres image on its first start (an empty data volume): Prefect's own database,
-- next to sellerpulse's (POSTGRES_DB). A volume created before this file existed needs it by hand:
--   docker compose exec postgres createdb -U postgres prefect
CREATE DATABASE prefect;
