// WebNN availability: navigator.ml exists only with the WebMachineLearningNeuralNetwork feature, and
// a context can still fail where the browser has no backend (Debian's Chromium: no WebNN backend).

interface MLContextLike {
  opSupportLimits?: () => Record<string, unknown>;
}

interface MLLike {
  createContext(options?: Record<string, string>): Promise<MLContextLike>;
}

export function webnnApi(): MLLike | null {
  const ml = (navigator as Navigator & { ml?: MLLike }).ml;
  return ml ?? null;
}

/** Whether this browser can create a WebNN context, and why not when it cannot. */
export async function probeWebnn(): Promise<Record<string, string | boolean>> {
  const ml = webnnApi();
  if (!ml) {
    return {
      available: false,
      reason: "navigator.ml is missing: WebNN is off in this browser (Chromium: --enable-features=WebMachineLearningNeuralNetwork)",
    };
  }
  try {
    const context = await ml.createContext({ deviceType: "cpu" });
    return { available: true, reason: "", ops: Object.keys(context.opSupportLimits?.() ?? {}).length.toString() };
  } catch (error) {
    return { available: false, reason: `navigator.ml.createContext() failed: ${error instanceof Error ? error.message : String(error)}` };
  }
}
