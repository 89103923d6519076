export async function cmdDemo(argv: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  void argv; void out;
  err('masq demo: not built yet');
  return 1;
}
