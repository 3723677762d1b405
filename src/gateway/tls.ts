// The gateway's TLS key and certificate: the configured files, or a self-signed pair generated once under data_dir/tls/.
import fs from 'node:fs';
import path from 'node:path';
import { generate } from 'selfsigned';
import type { Config } from '../config/schema.ts';

export async function loadTls(config: Config, dataDir: string): Promise<{ key: string; cert: string; generated: boolean }> {
  const t = config.gateway.tls;
  if (t.cert && t.key) {
    return { key: fs.readFileSync(path.resolve(dataDir, '..', t.key), 'utf8'), cert: fs.readFileSync(path.resolve(dataDir, '..', t.cert), 'utf8'), generated: false };
  }
  const dir = path.join(dataDir, 'tls');
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  if (fs.existsSync(keyFile) && fs.existsSync(certFile)) {
    return { key: fs.readFileSync(keyFile, 'utf8'), cert: fs.readFileSync(certFile, 'utf8'), generated: false };
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pems = await generate([{ name: 'commonName', value: config.gateway.hostname }], {
    keySize: 2048,
    days: 825,
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: config.gateway.hostname }] }],
  } as never);
  fs.writeFileSync(keyFile, pems.private, { mode: 0o600 });
  fs.writeFileSync(certFile, pems.cert, { mode: 0o644 });
  return { key: pems.private, cert: pems.cert, generated: true };
}
