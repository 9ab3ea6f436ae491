import type { Device } from '../../services/types.js';

/** How users and devices appear in HTTP bodies (snake_case, times in Unix ms). */

/** Users look the same in HTTP bodies as in frames: protocol/encode.ts userJson, one mapper and one type. */

export interface DeviceJson {
  readonly id: number;
  readonly name: string;
  readonly platform: string;
  readonly created_at: number;
  readonly last_seen_at: number | null;
}

export function deviceJson(device: Device): DeviceJson {
  return { id: device.id, name: device.name, platform: device.platform, created_at: device.createdAt, last_seen_at: device.lastSeenAt };
}
