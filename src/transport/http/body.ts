import { ChatError } from '../../errors.js';
import { type JsonObject, isObject } from '../../protocol/fields.js';

/** Reads a request body as one JSON object, or says precisely what is wrong with it. */
export async function readJsonObject(request: Request): Promise<JsonObject> {
  const type = request.headers.get('content-type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new ChatError('unsupported_media_type', `send the body as JSON with "Content-Type: application/json" (got ${type ? `"${type}"` : 'none'})`);
  }
  const text = await request.text();
  if (text.trim() === '') throw new ChatError('invalid_json', 'the request body is empty; send a JSON object');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ChatError('invalid_json', `the request body is not valid JSON: ${(error as Error).message}`);
  }
  if (!isObject(value)) throw new ChatError('invalid_json', 'the request body must be a JSON object');
  return value;
}
