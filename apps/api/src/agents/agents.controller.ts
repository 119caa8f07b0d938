import { Body, Controller, Post, Req } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { z } from 'zod';
import { EnrolRequest, enrolRequestSchema } from '@rcflow/agent-protocol';
import { Public } from '../auth/auth.guard';
import { Zod } from '../common/validation';
import { RateBudgeted } from '../edge/rate-limits';
import { EnrolmentService } from './enrolment.service';

const jsonSchema = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input' }) as Record<string, unknown>;

@ApiTags('agents')
@Controller('v1')
export class AgentsController {
  constructor(private readonly enrolment: EnrolmentService) {}

  @Post('agent/enrol')
  @Public()
  @RateBudgeted('enrol')
  @ApiOperation({ summary: 'An agent exchanges an enrolment token for a device credential (no API key; the token authenticates)' })
  @ApiBody({ schema: jsonSchema(enrolRequestSchema) })
  enrol(@Body(new Zod(enrolRequestSchema)) body: EnrolRequest, @Req() req: Request) {
    return this.enrolment.enrol(body, req.ip ?? 'unknown');
  }
}
