/** The saga bench's result as markdown tables, as bench/README.md quotes them. */
import type { SagaBench } from "./sagas";

const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);

export function reportSagas(result: SagaBench): void {
  const { saturation, fixed } = result;
  console.log(
    `\nOrder saga (issue 6): ${result.nodes.length} node processes ` +
      `(${result.nodes.map((n) => `${n.name}: ${n.services}`).join("; ")}), ${result.natsVersion}, ` +
      `PostgreSQL ${result.postgresVersion}; happy-path orders (pm_card_ok, DE), ${result.warmup} to warm up first`,
  );
  console.log(
    "| phase | load | orders placed | sagas completed | seconds | sagas/s | steady sagas/s | e2e p50 ms | e2e p99 ms | e2e max ms | POST p50 ms | POST p99 ms |\n" +
      "|---|---|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const r of [saturation, fixed]) {
    console.log(
      `| ${r.name} | ${r.load} | ${r.placed} | ${r.completed} | ${r.seconds} | ${r.sagasPerSecond} | ${r.steadySagasPerSecond} | ` +
        `${r.endToEnd.p50} | ${r.endToEnd.p99} | ${r.endToEnd.max} | ${r.post.p50} | ${r.post.p99} |`,
    );
  }
  console.log(`fixed rate: ${fixed.load} (${result.rateChosen}), latest send ${fixed.sendLagMs} ms after its time`);
  console.log("\nWhere the end-to-end time goes (p50 / p99 ms):");
  console.log(
    "| phase | POST sent → saga started | saga started → completed | of which in the seven actions | per step command, beside its action |",
  );
  console.log("|---|---|---|---|---|");
  for (const r of [saturation, fixed]) {
    console.log(
      `| ${r.name} | ${r.toStart.p50} / ${r.toStart.p99} | ${r.steps.p50} / ${r.steps.p99} | ` +
        `${r.actions.p50} / ${r.actions.p99} | ${r.hop.p50} / ${r.hop.p99} |`,
    );
  }
  const { perSaga, gross, idle, idleSeconds } = result.cost;
  console.log(
    `\nPer saga (issue 15), over the fixed-rate phase's ${perSaga.sagas} completed sagas (POST → COMPLETED, all three ` +
      `nodes), the nodes' background (${f2(idleSeconds)} s quiet before) taken out:`,
  );
  console.log(
    "| | SQL statements | of which BEGIN/COMMIT/… | explicit COMMITs | commits (pg_stat_database) | rollbacks | JetStream publishes | CPU ms nodes | CPU ms nats-server | CPU ms postgres backends |\n" +
      "|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const [what, c] of [
    ["**per saga**", perSaga],
    ["per saga, background left in", gross],
    ["background per second", idle],
  ] as const) {
    console.log(
      `| ${what} | ${f1(c.statements)} | ${f1(c.transactionControl)} | ${f1(c.explicitCommits)} | ${f1(c.commits)} | ${f1(c.rollbacks)} | ` +
        `${f1(c.publishes)} | ${f1(c.nodeCpuMs)} | ${f1(c.natsCpuMs)} | ${f1(c.postgresCpuMs)} |`,
    );
  }
  console.log("\nChecks (orders placed in the phase):");
  for (const r of [saturation, fixed]) {
    const others = Object.entries(r.notCompleted)
      .map(([status, n]) => `${n} ${status}`)
      .join(", ");
    console.log(
      `- ${r.name}: ${r.placed} POSTs, ${r.postErrors} not 201; sagas COMPLETED ${r.completed}` +
        `${others ? ` (not completed: ${others})` : ", none other"}; orders COMPLETED ${r.ordersCompleted}; ` +
        `orders with a CHARGED payment ${r.paymentsCharged}; orders with a shipment ${r.shipments}`,
    );
  }
  for (const r of [saturation, fixed]) {
    const { cpu } = r;
    console.log(`\nCPU during ${r.name}, ${f2(cpu.seconds)} s, in cores (of ${cpu.cores}):`);
    console.log("| process | cores |\n|---|---|");
    for (const row of cpu.rows) console.log(`| ${row.what} | ${f2(row.cores)} |`);
    console.log(`| rest of the machine (kernel, other processes) | ${f2(cpu.other)} |`);
    console.log(
      `| **machine busy (/proc/stat)** | **${f2(cpu.machineBusy)}** (${Math.round((cpu.machineBusy / cpu.cores) * 100)} %; ` +
        `iowait ${f2(cpu.machineIowait)}, steal ${f2(cpu.machineSteal)}) |`,
    );
    if (cpu.other > 0.2) {
      console.log(`note: ${f2(cpu.other)} cores went to other processes during this phase; the machine was not quiet`);
    }
  }
}
