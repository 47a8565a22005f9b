import type { Migration } from "../../lib/database";

/**
 * Sagas run in the engine's memory under a lease (issue 15): `lease_owner` is the engine process that runs the saga
 * and `lease_until` when its hold ends unless renewed; a moving saga with no owner, or an expired lease, is taken over
 * by the sweeper of any engine. `correlation_id` keeps the trace of the request that started the saga, for the spans
 * and logs of its steps wherever they run.
 */
const migration: Migration = {
  name: "0004-add-leases",
  async up({ sequelize }) {
    await sequelize.query(`
      ALTER TABLE sagas ADD COLUMN lease_owner varchar(200), ADD COLUMN lease_until timestamptz,
        ADD COLUMN correlation_id varchar(200);
      UPDATE sagas SET correlation_id = id::text;
      ALTER TABLE sagas ALTER COLUMN correlation_id SET NOT NULL;
      CREATE INDEX sagas_lease_idx ON sagas (lease_until NULLS FIRST) WHERE status IN ('RUNNING', 'COMPENSATING');
      DROP INDEX sagas_due_idx;
    `);
  },
};

export default migration;
