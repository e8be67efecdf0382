/** Where media live in the object store (infra/object-store): one key scheme for every adapter. */

/** The uploaded original. Ids are server-made UUIDs, so keys are always valid object keys. */
export const mediaObjectKey = (conversationId: string, mediaId: string) => `media/${conversationId}/${mediaId}`;

/** The thumbnail the worker makes (WebP). */
export const thumbnailKey = (mediaId: string) => `thumbnails/${mediaId}.webp`;
