// End-to-end and fault tests start real processes: every test and hook is bounded, 2 minutes
// unless the file says otherwise (testTimeout is global in a multi-project jest config).
jest.setTimeout(120_000);
