import type { Migration } from "../../lib/database";

/**
 * When the order's `order.created` was last sent: an order still PENDING SAGA_STALL_AFTER later has it sent again
 * (a message JetStream acknowledged and then lost would otherwise leave the order without a saga).
 */
const migration: Migration = {
  name: "0004-add-announced-at",
  async up({ sequelize }) {
    await sequelize.query(`
      ALTER TABLE orders ADD COLUMN announced_at timestamptz NOT NULL DEFAULT now();
      CREATE INDEX orders_pending_announced_idx ON orders (announced_at) WHERE status = 'PENDING';
    `);
  },
};

export default migration;
