import type { Device, User } from '../../services/types.js';

/** How users and devices appear in HTTP bodies (snake_case, times in Unix ms). */

export interface UserJson {
  readonly id: number;
  readonly username: string;
  readonly display_name: string;
}

export interface DeviceJson {
  readonly id: number;
  readonly name: string;
  readonly platform: string;
  readonly created_at: number;
  readonly last_seen_at: number | null;
}

export function userJson(user: User): UserJson {
  return { id: user.id, username: user.username, display_name: user.displayName };
}

export function deviceJson(device: Device): DeviceJson {
  return { id: device.id, name: device.name, platform: device.platform, created_at: device.createdAt, last_seen_at: device.lastSeenAt };
}
