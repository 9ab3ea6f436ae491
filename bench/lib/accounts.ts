import { logIn, signUp } from '../../test/helpers/http.js';

export interface Device {
  readonly userId: number;
  readonly username: string;
  readonly token: string;
}

/** Runs `task` for 0..count-1 with at most `parallel` at once. */
export async function inParallel<T>(count: number, parallel: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      results[index] = await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, lane));
  return results;
}

/** `count` new users (named PREFIX-N), each with one logged-in device; `progress` is told every 1,000. */
export async function createDevices(baseUrl: string, prefix: string, count: number, progress?: (done: number) => void): Promise<Device[]> {
  let done = 0;
  return inParallel(count, 16, async (index) => {
    const username = `${prefix}-${index}`;
    const { token, userId } = await signUp(baseUrl, username, 'bench password', 'bench');
    if (++done % 1000 === 0) progress?.(done);
    return { userId, username, token };
  });
}

/** Another device of a user created by createDevices. */
export async function addDevice(baseUrl: string, device: Device, name: string): Promise<Device> {
  const { token } = await logIn(baseUrl, device.username, 'bench password', name);
  return { ...device, token };
}
