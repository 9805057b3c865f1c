// Error codes, WebSocket close codes and limits of agent protocol v1: the parts of the wire both sides must agree
// on beyond the message shapes in v1.ts.

/** Codes carried by `{t:'error'}` frames and by `{error:{code}}` bodies of the enrollment endpoint. */
export const ERROR_CODES = {
  /** The frame is not JSON, not a known message, or breaks the schema. */
  malformedFrame: 'MalformedFrame',
  /** Binary frames are not part of the protocol. */
  binaryFrame: 'BinaryFrame',
  /** `seq` did not strictly increase on this connection. */
  replayedSeq: 'ReplayedSeq',
  /** An ack/progress/result named an action that is not this device's (or does not exist). */
  notYourAction: 'NotYourAction',
  /** The result signature does not verify with the device's enrolled key. */
  badSignature: 'BadSignature',
  /** A frame other than `hello` arrived before the handshake finished. */
  notAuthenticated: 'NotAuthenticated',
  /** The device sent frames faster than the gateway accepts. */
  tooManyFrames: 'TooManyFrames',
  /** The server could not process the frame now (storage unavailable); the device should retry later. */
  unavailable: 'Unavailable',
  // Enrollment (HTTP)
  invalidRequest: 'InvalidRequest',
  invalidPublicKey: 'InvalidPublicKey',
  invalidEnrollToken: 'InvalidEnrollToken',
  machineOffboarded: 'MachineOffboarded',
  requestTooLarge: 'RequestEntityTooLarge',
  tooManyRequests: 'TooManyRequests',
} as const;

export type ProtocolErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/** WebSocket close codes (4000–4999 is the application range). */
export const CLOSE_CODES = {
  /** Standard: the gateway is shutting down; reconnect later. */
  goingAway: 1001,
  /** Standard: a frame broke the rules once too often. */
  policyViolation: 1008,
  /** Standard (sent by `ws` itself): a frame exceeded MAX_FRAME_BYTES. */
  tooBig: 1009,
  /** No valid `hello` in time, unknown machine, or a signature that does not verify. Reconnecting will not help
   *  until the device is enrolled again. */
  authenticationFailed: 4401,
  /** The machine is offboarded: it may not connect any more. */
  offboarded: 4403,
  /** A newer connection of the same machine took over. The older instance should not fight back. */
  replaced: 4409,
  /** The peer stopped answering pings. */
  idleTimeout: 4408,
} as const;

/** How long a fresh connection has to send a valid `hello`. */
export const HELLO_TIMEOUT_MS = 10_000;
/** Frames with a rule violation tolerated on one connection before the gateway closes it. */
export const MAX_REJECTED_FRAMES = 5;
/** Frames one connection may send per FRAME_WINDOW_MS before the gateway closes it. */
export const MAX_FRAMES_PER_WINDOW = 2_000;
export const FRAME_WINDOW_MS = 10_000;
/** Sizes the schemas enforce. */
export const LIMITS = {
  enrollBodyBytes: 64 * 1024,
  hostname: 253,
  tags: 50,
  tag: 200,
  ipAddresses: 64,
  capabilities: 32,
  observationsPerFrame: 4_000,
  vaultItemsPerFrame: 1_000,
  processesPerResult: 2_000,
  filesPerResult: 2_000,
  reason: 2_000,
  progressMessage: 2_000,
  path: 4_096,
  comment: 4_000,
} as const;
