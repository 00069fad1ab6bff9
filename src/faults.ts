// Fault-injection seams for crash-safety tests. A test arms a named point; the next time the code passes
// it, it throws as a crash there would. Nothing arms a point outside tests, where each check is one Set lookup.

export class InjectedFault extends Error {
  override readonly name = "InjectedFault";
}

const armed = new Set<string>();

export function armFault(point: string): void {
  armed.add(point);
}

export function disarmFaults(): void {
  armed.clear();
}

/** True once (then disarmed) when a test armed `point`. */
export function faultArmed(point: string): boolean {
  return armed.delete(point);
}

/** Throws once when a test armed `point`. */
export function faultPoint(point: string): void {
  if (faultArmed(point)) throw new InjectedFault(`injected fault at ${point}`);
}
