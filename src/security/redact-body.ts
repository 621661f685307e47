/**
 * Secrets in message bodies: the values of JSON members and form fields whose
 * names say they hold credentials (`"password": "…"`, `client_secret=…`),
 * masked in place byte for byte with `*`, as bodies stream by. Used on HTTP/1
 * bodies (redact-payload.ts) and on HTTP/2 DATA that is not gRPC
 * (redact-http2.ts; gRPC messages are masked whole there).
 *
 * A byte-at-a-time state machine, so what it masks does not depend on where
 * records cut the body. It never masks a CR or LF: a JSON string cannot hold
 * one raw, so one means the value ended — most often at a chunked body's
 * chunk-size line, whose bytes must stay for the parser to frame the body.
 */

const MASK = 0x2a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const EQUALS = 0x3d;
const AMPERSAND = 0x26;
const CR = 0x0d;
const LF = 0x0a;
/** Longer names are not credential names: they stop being collected. */
const MAX_NAME = 40;

/**
 * Names (lower case, without `-`, `_` and `.`) whose values are credentials.
 * Beyond the words themselves, compounds that end in one (`db_password`,
 * `x-auth-token`, `stripe_api_key`) count too.
 */
const SECRET_WORDS = [
  'password',
  'passwd',
  'pwd',
  'passphrase',
  'secret',
  'token',
  'apikey',
  'accesskey',
  'privatekey',
  'credential',
  'credentials',
  'authorization',
  'sessionid',
  'cookie',
  'otp',
  'pin',
  'ssn',
  'cvv',
  'cardnumber',
];

/** Whether a JSON member or form field called `name` holds a credential. */
export function isSecretField(name: string): boolean {
  const n = name.toLowerCase().replace(/[-_.]/g, '');
  return SECRET_WORDS.some((w) => n === w || (w.length > 3 && n.endsWith(w)));
}

const enum Json {
  Scan,
  Name,
  AfterName,
  BeforeValue,
  SkipString,
  SkipEscape,
  SecretString,
  SecretEscape,
  SecretBare,
}
const enum Form {
  FieldStart,
  Name,
  SecretValue,
  Other,
}

export class BodyMasker {
  private json = Json.Scan;
  private form = Form.FieldStart;
  private jsonName = '';
  private jsonNameTooLong = false;
  private formName = '';

  /** `atBodyStart`: the first byte is a body's first (a form's first field may start there). */
  constructor(atBodyStart = true) {
    this.form = atBodyStart ? Form.FieldStart : Form.Other;
  }

  /** Mask `payload[from, to)` in place; returns the bytes masked. */
  mask(payload: Uint8Array, from = 0, to = payload.length): number {
    let masked = 0;
    for (let i = from; i < to; i++) {
      const b = payload[i]!;
      if (this.json === Json.Scan && this.form === Form.Other) {
        // Most of a body: nothing to do until the next quote or field separator.
        let next = to;
        const q = payload.indexOf(QUOTE, i);
        if (q >= 0 && q < next) next = q;
        const a = payload.indexOf(AMPERSAND, i);
        if (a >= 0 && a < next) next = a;
        if (next >= to) return masked;
        if (next > i) {
          i = next - 1;
          continue;
        }
      }
      let hide = this.jsonByte(b);
      hide = this.formByte(b) || hide;
      if (hide && b !== CR && b !== LF) {
        payload[i] = MASK;
        masked++;
      }
    }
    return masked;
  }

  /** Bytes of the body that were not copied: where they fell is not known, so every state starts over. */
  gap(): void {
    this.json = Json.Scan;
    this.form = Form.Other;
  }

  private jsonByte(b: number): boolean {
    switch (this.json) {
      case Json.Scan:
        if (b === QUOTE) {
          this.json = Json.Name;
          this.jsonName = '';
          this.jsonNameTooLong = false;
        }
        return false;
      case Json.Name:
        if (b === QUOTE) this.json = Json.AfterName;
        else if (b === CR || b === LF) this.json = Json.Scan;
        else if (this.jsonName.length < MAX_NAME) this.jsonName += String.fromCharCode(b);
        else this.jsonNameTooLong = true;
        return false;
      case Json.AfterName:
        if (b === COLON) this.json = Json.BeforeValue;
        else if (b === QUOTE) {
          // The quote after a string that was a value, not a name: this one opens the next string.
          this.json = Json.Name;
          this.jsonName = '';
          this.jsonNameTooLong = false;
        } else if (!isSpace(b)) this.json = Json.Scan;
        return false;
      case Json.BeforeValue: {
        if (isSpace(b)) return false;
        const secret = !this.jsonNameTooLong && isSecretField(this.jsonName);
        if (b === QUOTE) this.json = secret ? Json.SecretString : Json.SkipString;
        else if (secret && b !== 0x7b && b !== 0x5b) {
          // A number, true/false/null: masked to its end (an object or array under a secret name is walked into).
          this.json = Json.SecretBare;
          return true;
        } else this.json = Json.Scan;
        return false;
      }
      case Json.SkipString:
        if (b === BACKSLASH) this.json = Json.SkipEscape;
        else if (b === QUOTE || b === CR || b === LF) this.json = Json.Scan;
        return false;
      case Json.SkipEscape:
        this.json = Json.SkipString;
        return false;
      case Json.SecretString:
        if (b === BACKSLASH) {
          this.json = Json.SecretEscape;
          return true;
        }
        if (b === QUOTE || b === CR || b === LF) {
          this.json = Json.Scan;
          return false;
        }
        return true;
      case Json.SecretEscape:
        this.json = Json.SecretString;
        return b !== CR && b !== LF;
      case Json.SecretBare:
        if (b === 0x2c || b === 0x7d || b === 0x5d || isSpace(b)) {
          this.json = Json.Scan;
          return false;
        }
        return true;
    }
  }

  private formByte(b: number): boolean {
    switch (this.form) {
      case Form.FieldStart:
      case Form.Name:
        if (b === EQUALS && this.form === Form.Name) {
          this.form = isSecretField(decodeName(this.formName)) ? Form.SecretValue : Form.Other;
          return false;
        }
        if (isNameByte(b) && this.formName.length < MAX_NAME) {
          if (this.form === Form.FieldStart) this.formName = '';
          this.form = Form.Name;
          this.formName += String.fromCharCode(b);
          return false;
        }
        this.form = b === AMPERSAND ? Form.FieldStart : Form.Other;
        if (b === AMPERSAND) this.formName = '';
        return false;
      case Form.SecretValue:
        if (b === AMPERSAND) {
          this.form = Form.FieldStart;
          this.formName = '';
          return false;
        }
        if (b === CR || b === LF || b === 0x20) {
          this.form = Form.Other;
          return false;
        }
        return true;
      case Form.Other:
        if (b === AMPERSAND) {
          this.form = Form.FieldStart;
          this.formName = '';
        }
        return false;
    }
  }
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === CR || b === LF;
}

/** A form field name's bytes: letters, digits, `_ - . %` and `[ ]` (`user[password]`). */
function isNameByte(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x5f || b === 0x2d || b === 0x2e || b === 0x25 || b === 0x5b || b === 0x5d;
}

/** `user%5Bpassword%5D` and `user[password]` name the field `password`. */
function decodeName(name: string): string {
  const plain = name.replace(/%5[bB]/g, '[').replace(/%5[dD]/g, ']');
  const inner = /\[([^\]]*)\]$/.exec(plain);
  return inner ? inner[1]! : plain;
}
