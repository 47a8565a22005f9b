import type { Migration } from "../../lib/database";

const migration: Migration = {
  name: "0003-create-spans",
  async up({ sequelize }) {
    await sequelize.query(`
      CREATE TABLE spans (
        trace_id varchar(200) NOT NULL,
        span_id varchar(200) NOT NULL,
        parent_id varchar(200),
        name varchar(500) NOT NULL,
        type varchar(32),
        service varchar(200),
        node_id varchar(200),
        started_at timestamptz NOT NULL,
        duration_ms double precision,
        error text,
        tags jsonb NOT NULL,
        PRIMARY KEY (trace_id, span_id)
      );
      CREATE INDEX spans_started_idx ON spans (started_at);
    `);
  },
};

export default migration;
