import { targetUrlProblem } from './target-url';

describe('subscription URLs', () => {
  it('takes https, and http only when allowed', () => {
    expect(targetUrlProblem('https://hooks.example.com/rcflow', false)).toBeNull();
    expect(targetUrlProblem('http://127.0.0.1:8080/in', true)).toBeNull();
    expect(targetUrlProblem('http://hooks.example.com/rcflow', false)).toMatch(/https/);
  });

  it('refuses credentials, fragments, other schemes and non-URLs', () => {
    expect(targetUrlProblem('https://user:pw@hooks.example.com/', false)).toMatch(/credentials/);
    expect(targetUrlProblem('https://user@hooks.example.com/', false)).toMatch(/credentials/);
    expect(targetUrlProblem('https://hooks.example.com/#x', false)).toMatch(/fragment/);
    expect(targetUrlProblem('ftp://hooks.example.com/', true)).toMatch(/https/);
    expect(targetUrlProblem('file:///etc/passwd', true)).toMatch(/https/);
    expect(targetUrlProblem('hooks.example.com', true)).toMatch(/absolute/);
  });
});
