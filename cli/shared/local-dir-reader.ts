/**
 * ObjectReader over a downloaded copy of a bucket (`validate-logs --local-dir DIR`): DIR holds
 * the keys as paths (`aws s3 sync s3://BUCKET DIR`), and a key's S3 user metadata, which a
 * download cannot keep, sits beside it in a sidecar `<key>.metadata.json`:
 * `{"signature": "<hex>", "signature-algorithm": "SHA256withRSA"}` (other string fields are
 * read as metadata too; sidecars are not listed as objects). Every bucket name maps to DIR.
 */
import { close, createReadStream, fstat, open } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join, relative, resolve, sep } from 'node:path';
import type { ObjectReader, OpenedObject } from '../../lambda/core/ports';

export const METADATA_SIDECAR_SUFFIX = '.metadata.json';

// Plain descriptors: streams over a FileHandle read noticeably slower for many small files.
const openFd = promisify(open);
const fstatFd = promisify(fstat);
const closeFd = promisify(close);

function isNotFound(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}

export class LocalDirReader implements ObjectReader {
  private readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  /** The path of a key, or undefined when the key would lead outside the root. */
  private pathOf(key: string): string | undefined {
    const path = resolve(this.root, ...key.split('/'));
    const rel = relative(this.root, path);
    if (rel === '' || rel.startsWith('..') || rel.split(sep).includes('..')) return undefined;
    return path;
  }

  async list(_bucket: string, prefix: string): Promise<string[]> {
    const slash = prefix.lastIndexOf('/');
    const folder = prefix.slice(0, slash + 1);
    const start = folder === '' ? this.root : this.pathOf(folder);
    if (start === undefined) return [];
    const keys: string[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        if (isNotFound(error)) return;
        throw error;
      }
      for (const entry of entries) {
        const key = `${keyPrefix}${entry.name}`;
        if (entry.isDirectory()) {
          if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`))
            await walk(join(dir, entry.name), `${key}/`);
        } else if (key.startsWith(prefix) && !key.endsWith(METADATA_SIDECAR_SUFFIX)) {
          keys.push(key);
        }
      }
    };
    await walk(start, folder);
    return keys;
  }

  async listFolders(_bucket: string, prefix: string): Promise<string[]> {
    const dir = prefix === '' ? this.root : this.pathOf(prefix.replace(/\/$/, ''));
    if (dir === undefined) return [];
    try {
      const entries = await readdir(dir, { withFileTypes: true });
      return entries.filter((e) => e.isDirectory()).map((e) => `${prefix}${e.name}/`);
    } catch (error) {
      if (isNotFound(error)) return [];
      throw error;
    }
  }

  async open(
    _bucket: string,
    key: string,
    options: { readonly metadata?: boolean } = {},
  ): Promise<OpenedObject | undefined> {
    const path = this.pathOf(key);
    if (path === undefined) return undefined;
    let fd: number;
    try {
      fd = await openFd(path, 'r');
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    let directory: boolean;
    let size: number;
    try {
      const stat = await fstatFd(fd);
      directory = stat.isDirectory();
      size = stat.size;
    } catch (error) {
      await closeFd(fd);
      throw error;
    }
    if (directory) {
      await closeFd(fd);
      return undefined;
    }
    let metadata: Record<string, string> = {};
    if (options.metadata !== false) {
      try {
        metadata = parseSidecar(await readFile(`${path}${METADATA_SIDECAR_SUFFIX}`, 'utf8'), key);
      } catch (error) {
        if (!isNotFound(error)) {
          await closeFd(fd);
          throw error;
        }
      }
    }
    // Reads of the file's size (up to 256 KiB): a small file's bytes then hold no larger buffer
    // behind them, so thousands of files read leave no 256 KiB garbage each for the GC to catch.
    const highWaterMark = Math.min(Math.max(size, 1), 256 * 1024);
    return { body: createReadStream('', { fd, highWaterMark }), metadata };
  }
}

/** The metadata of a sidecar text; throws naming the key when it is not a JSON object of strings. */
export function parseSidecar(text: string, key: string): Record<string, string> {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new Error(`${key}${METADATA_SIDECAR_SUFFIX} is not JSON: ${(error as Error).message}`);
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document))
    throw new Error(`${key}${METADATA_SIDECAR_SUFFIX} must hold a JSON object`);
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(document)) {
    if (typeof value === 'string') metadata[name.toLowerCase()] = value;
  }
  return metadata;
}
