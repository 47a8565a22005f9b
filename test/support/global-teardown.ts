export default async function globalTeardown(): Promise<void> {
  const servers = globalThis.__aicunetServers;
  await servers?.nats?.stop();
  await servers?.redis?.stop();
  await servers?.postgres?.stop();
}
