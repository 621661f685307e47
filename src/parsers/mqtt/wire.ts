/**
 * MQTT's wire encodings (section 1.5 of both specifications): the Variable
 * Byte Integer, two-byte-length strings and binary data, and MQTT 5's
 * properties by identifier. Shared by the parser and the masker.
 */

/** The largest Remaining Length four bytes can say (268,435,455). */
export const MAX_REMAINING = 0x0fffffff;

/** A Variable Byte Integer at `at`: [value, bytes], 'more' when its bytes are not all held, undefined when it runs past four bytes. */
export function varint(b: Uint8Array, at: number, end = b.length): [number, number] | 'more' | undefined {
  let value = 0;
  for (let i = 0; i < 4; i++) {
    if (at + i >= end) return 'more';
    const byte = b[at + i]!;
    value += (byte & 0x7f) * 128 ** i;
    if ((byte & 0x80) === 0) return [value, i + 1];
  }
  return undefined;
}

/** Fixed-header flags a packet type allows (section 2.2.2): PUBREL, SUBSCRIBE and UNSUBSCRIBE say 0010, PUBLISH its own but never QoS 3, the rest 0000. */
export function validFlags(type: number, flags: number): boolean {
  if (type === 3) return ((flags >> 1) & 3) !== 3;
  if (type === 6 || type === 8 || type === 10) return flags === 2;
  return flags === 0;
}

/** How an MQTT 5 property's value is encoded, by its identifier (section 2.2.2.2 of MQTT 5.0). */
export type PropertyType = 'byte' | 'u16' | 'u32' | 'varint' | 'string' | 'binary' | 'pair';

// prettier-ignore
export const PROPERTY_TYPES: ReadonlyMap<number, PropertyType> = new Map<number, PropertyType>([
  [0x01, 'byte'], [0x02, 'u32'], [0x03, 'string'], [0x08, 'string'], [0x09, 'binary'], [0x0b, 'varint'],
  [0x11, 'u32'], [0x12, 'string'], [0x13, 'u16'], [0x15, 'string'], [0x16, 'binary'], [0x17, 'byte'],
  [0x18, 'u32'], [0x19, 'byte'], [0x1a, 'string'], [0x1c, 'string'], [0x1f, 'string'], [0x21, 'u16'],
  [0x22, 'u16'], [0x23, 'u16'], [0x24, 'byte'], [0x25, 'byte'], [0x26, 'pair'], [0x27, 'u32'],
  [0x28, 'byte'], [0x29, 'byte'], [0x2a, 'byte'],
]);

export const PROPERTY = {
  AUTHENTICATION_DATA: 0x16,
  REASON_STRING: 0x1f,
  TOPIC_ALIAS: 0x23,
  USER_PROPERTY: 0x26,
} as const;

/** Bytes a fixed-size property value takes (strings, binary data and pairs say their own). */
export const FIXED_SIZE: Partial<Record<PropertyType, number>> = { byte: 1, u16: 2, u32: 4 };
