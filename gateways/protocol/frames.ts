import type { ClientFrame as PbClientFrame, ServerFrame as PbServerFrame } from './gen/chat/v1/frames_pb.js';
import type { Event as PbEvent } from './gen/chat/v1/events_pb.js';
import type { Plain } from './plain.js';

/**
 * The frame types the gateway and the SDK work with: the generated shapes as plain objects
 * (camelCase fields, 64-bit integers as numbers, a `oneof` as `{ case, value }`), with the
 * body required. `frames.proto` documents every field.
 */
export type ClientBody = Exclude<Plain<PbClientFrame>['body'], { case: undefined }>;
export type ClientFrame = { requestId: number; body: ClientBody };
export type ClientFrameCase = ClientBody['case'];
/** The value of one client frame type, e.g. `ClientRequest<'sendMessage'>`. */
export type ClientRequest<C extends ClientFrameCase> = Extract<ClientBody, { case: C }>['value'];

export type ServerBody = Exclude<Plain<PbServerFrame>['body'], { case: undefined }>;
export type ServerFrame = { requestId: number; body: ServerBody };
export type ServerFrameCase = ServerBody['case'];
/** The value of one server frame type, e.g. `ServerMessage<'sendAck'>`. */
export type ServerMessage<C extends ServerFrameCase> = Extract<ServerBody, { case: C }>['value'];

/** The Event frame (one stored event of a conversation). */
export type EventFrame = Plain<PbEvent>;
export type EventPayload = Exclude<EventFrame['payload'], { case: undefined }>;
