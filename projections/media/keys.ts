/** Where media live in the object store (infra/object-store): one key scheme for every adapter. */

/** Where the upload URL writes the original. Ids are server-made UUIDs, so keys are always valid object keys. */
export const mediaObjectKey = (conversationId: string, mediaId: string) => `media/${conversationId}/${mediaId}`;

/**
 * The sealed copy of an upload, made when a message first names it: a key no upload URL ever
 * names, unique per copy (`sealId`), so nothing can write it after it is checked.
 */
export const sealedMediaKey = (conversationId: string, mediaId: string, sealId: string) => `sealed/${conversationId}/${mediaId}/${sealId}`;

/** The thumbnail the worker makes (WebP). */
export const thumbnailKey = (mediaId: string) => `thumbnails/${mediaId}.webp`;
