/**
 * The subscriber SDK: what a business service imports to receive Kairos fires, either as a consumer of
 * topic fires (`subscribe`: over WebSocket from a node, or in direct mode straight from EventStoreDB) or as
 * a webhook receiver checking signatures (`verifySignature`).
 */
export { subscribe } from './subscribe.js';
export type { SubscribeOptions, Subscription } from './subscribe.js';
export { retireDirectGroup } from './directSubscription.js';
export type { DirectModeOptions } from './directSubscription.js';
export type { FireHandler, ReceivedFire } from './fireRunner.js';
export type { ConnectionState, StateChange } from './hubConnection.js';
export { signatureOf, verifySignature } from '../targets/http/httpTarget.js';
export type { WebhookBody } from '../targets/http/httpTarget.js';
export { PROTOCOL_VERSION } from '../targets/topic/protocol.js';
