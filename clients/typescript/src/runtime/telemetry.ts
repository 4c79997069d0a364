/** `X-Telemetry: herald-sdk-typescript/<version> (<runtime>; <os>)`, sent unless turned off. */

/** The SDK's version; test/runtime.test.ts checks that it matches package.json. */
export const SDK_VERSION = "1.1.0";

interface Globals {
  process?: { versions?: Record<string, string | undefined>; platform?: string };
  Deno?: { version?: { deno?: string }; build?: { os?: string } };
  navigator?: { userAgent?: string; userAgentData?: { platform?: string }; platform?: string };
}

/** The runtime and OS this code runs on, e.g. `["node/20.20.2", "linux"]`. */
export function runtimeInfo(g: Globals = globalThis as Globals): [string, string] {
  const versions = g.process?.versions;
  if (versions?.bun) return [`bun/${versions.bun}`, g.process?.platform ?? "unknown"];
  if (g.Deno?.version?.deno) return [`deno/${g.Deno.version.deno}`, g.Deno.build?.os ?? "unknown"];
  if (versions?.node) return [`node/${versions.node}`, g.process?.platform ?? "unknown"];
  const platform = g.navigator?.userAgentData?.platform ?? g.navigator?.platform ?? "unknown";
  return ["browser", platform.toLowerCase() || "unknown"];
}

export function telemetryHeader(g?: Globals): string {
  const [runtime, os] = runtimeInfo(g);
  return `herald-sdk-typescript/${SDK_VERSION} (${runtime}; ${os})`;
}
