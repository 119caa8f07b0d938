/** Reading the API key: typed at a terminal without echo, or the first line of piped standard input. */

const MAX_INPUT = 64 * 1024;

export class SecretInputError extends Error {}

export async function readSecret(stdin: NodeJS.ReadStream, prompt: NodeJS.WriteStream, text: string): Promise<string> {
  if (!stdin.isTTY) return firstLine(stdin);
  prompt.write(text);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  try {
    return await new Promise<string>((resolve, reject) => {
      let typed = '';
      const onData = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') {
            stdin.off('data', onData);
            prompt.write('\n');
            resolve(typed);
            return;
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            prompt.write('\n');
            reject(new SecretInputError('login cancelled'));
            return;
          }
          if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
          else if (ch >= ' ') typed += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
}

/** The first line of a stream (a key piped in: `echo "$KEY" | rcctl login`). */
export async function firstLine(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    const nl = text.search(/\r?\n/);
    if (nl !== -1) return text.slice(0, nl);
    if (text.length > MAX_INPUT) break;
  }
  return text.slice(0, MAX_INPUT).trim();
}
