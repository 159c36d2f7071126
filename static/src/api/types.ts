/** The app's names for API objects, from the generated schema. */
import type { components } from './schema.gen';

type Schemas = components['schemas'];

export type User = Schemas['User'];
/** A room as lists show it (with the caller's read state) or as changes answer it (without). */
export type Room = Schemas['Room'] & Partial<Schemas['ReadState']>;
export type Member = Schemas['Member'];
export type Invite = Schemas['Invite'];
export type UserHit = Schemas['UserMatch'];
export type FileLink = Schemas['FileLink'];
export type Activity = Schemas['Activity'];
export type RoomState = Schemas['RoomState'];
export type LastChange = Schemas['LastChange'];
export type Approval = Schemas['Approval'];
export type InboxItem = Schemas['ApprovalInboxItem'];
export type Rule = Schemas['Rule'];
export type DryRun = Schemas['DryRun'];
export type AuditEntry = Schemas['AuditEntry'];
export type CheckinView = Schemas['CheckinView'];
export type UsageReport = Schemas['UsageReport'];
export type FileAnalysis = Schemas['FileAnalysis'];
/** `GET /auth/config`: password sign-in and the OpenID Connect provider, if any. */
export type AuthConfig = Schemas['AuthConfig'];
