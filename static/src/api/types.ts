/**
 * The app's names for API objects, from the generated schema. `Required<…>`
 * marks objects whose schema in core/openapi.json lists no `required` fields
 * yet although the server always sends them (being fixed with the precise
 * OpenAPI work); it becomes a no-op once the schema says so.
 */
import type { components } from './schema.gen';
import type { ReadMarkers } from './pending';

type Schemas = components['schemas'];

export type User = Schemas['User'];
export type Room = Required<Omit<Schemas['Room'], 'unread'>> & Partial<ReadMarkers>;
export type Member = Required<Schemas['Member']>;
export type Invite = Required<Schemas['Invite']>;
