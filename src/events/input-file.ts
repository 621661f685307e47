/**
 * Opening what Loupe is told to read. A FIFO with no writer, /dev/zero or a
 * directory given as a capture, pcap or configuration made commands block
 * forever or fail with a raw errno: only regular files are read, opened
 * without blocking, and a file read whole is read to a bound.
 */
import * as fs from 'node:fs';

const { O_RDONLY, O_NONBLOCK, O_NOCTTY } = fs.constants;

/** An fd on a regular file; else an Error saying what the name is instead. */
export function openRegularFile(file: string): number {
  const fd = fs.openSync(file, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  const st = fs.fstatSync(fd);
  if (st.isFile()) return fd;
  fs.closeSync(fd);
  const kind = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() ? 'a character device' : st.isSocket() ? 'a socket' : 'not a regular file';
  throw new Error(`${kind}, not a file`);
}

/** A regular file's bytes, refused past `max` bytes. */
export function readRegularFile(file: string, max: number): Buffer {
  const fd = openRegularFile(file);
  try {
    const size = fs.fstatSync(fd).size;
    if (size > max) throw new Error(`${size} bytes, more than the ${max} read`);
    const buf = Buffer.alloc(size);
    let n = 0;
    while (n < size) {
      const got = fs.readSync(fd, buf, n, size - n, n);
      if (got === 0) break;
      n += got;
    }
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}
