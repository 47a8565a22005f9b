import type { Migration } from "../../lib/database";

/** The second built-in rule: a product whose stock drops under 5 opens a restock task for operators. */
const migration: Migration = {
  name: "0003-low-stock-rule",
  async up({ sequelize }) {
    await sequelize.query(`
      INSERT INTO rules (id, name, event, condition, action, params, built_in) VALUES (
        gen_random_uuid(), 'Restock low stock', 'product.stockChanged',
        '[{"path": "$.payload.product.stock", "op": "lt", "value": 5}]',
        'exec.tasks.create',
        '{"kind": "restock", "title": "Restock a product running low", "subject": "$.payload.product.id",
          "details": {"sku": "$.payload.product.sku", "stock": "$.payload.product.stock"}}',
        true
      );
    `);
  },
};

export default migration;
