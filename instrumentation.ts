export async function register() {
  if (process.env.NEXT_RUNTIME !== "nodejs") return;
  const { startCoffer } = await import("./lib/startup");
  await startCoffer();
}
