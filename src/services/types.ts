/** Domain values the services hand upwards. The transport and session map them to the wire. */

export interface User {
  readonly id: number;
  readonly username: string;
  readonly displayName: string;
}

export interface Device {
  readonly id: number;
  readonly userId: number;
  readonly name: string;
  readonly platform: string;
  readonly createdAt: number;
  readonly lastSeenAt: number | null;
}

/** Who is making a request: the device whose token was presented, and its user. */
export interface Principal {
  readonly user: User;
  readonly deviceId: number;
}

/** Told when devices lose their tokens, so their live connections can be closed. */
export interface RevocationListener {
  devicesRevoked(deviceIds: readonly number[]): void;
}
