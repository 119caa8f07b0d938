import { Body, Controller, Post, Req } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { EnrolRequest, enrolRequestSchema } from '@rcflow/agent-protocol';
import { Public } from '../auth/auth.guard';
import { Zod } from '../common/validation';
import { RateBudgeted } from '../edge/rate-limits';
import { EnrolmentService } from './enrolment.service';
import { ApiErrors, ApiInput, ApiReturns } from '../common/api-docs';
import * as S from '../openapi-schemas';

@ApiTags('agents')
@Controller('v1')
export class AgentsController {
  constructor(private readonly enrolment: EnrolmentService) {}

  @Post('agent/enrol')
  @Public()
  @RateBudgeted('enrol')
  @ApiOperation({ summary: 'An agent exchanges an enrolment token for a device credential (no API key; the token authenticates)' })
  @ApiInput({
    bodyExample: {
      token: 'rce_3f2a7c9e-1b4d-4e8a-9c6f-2d5e8b1a7f30.s3cr3t',
      hostname: 'PC-0001',
      presence: {
        osFamily: 'windows',
        osBuild: '10.0.22631',
        agentVersion: '1.4.0',
        domainJoined: true,
        domain: 'corp.example',
        fqdn: 'pc-0001.corp.example',
        loggedOnUser: 'CORP\\alice',
        locked: false,
        localAdministrators: ['CORP\\it-admins'],
        appliedSettingsHash: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
      },
    },
  })
  @ApiReturns(S.enrolled)
  @ApiErrors(401)
  enrol(@Body(new Zod(enrolRequestSchema)) body: EnrolRequest, @Req() req: Request) {
    return this.enrolment.enrol(body, req.ip ?? 'unknown');
  }
}
