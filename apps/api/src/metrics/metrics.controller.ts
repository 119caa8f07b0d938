import { Controller, Get, Res, UseGuards } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrors, ApiReturns } from '../common/api-docs';
import type { Response } from 'express';
import { renderMetrics } from '@rcflow/observability';
import { Public } from '../auth/auth.guard';
import { MetricsGuard } from './metrics.guard';

@ApiTags('metrics')
@Controller('metrics')
export class MetricsController {
  @Get()
  // Authenticated by MetricsGuard: an API key, or METRICS_TOKEN, which the global guard does not know.
  @Public()
  @UseGuards(MetricsGuard)
  @ApiReturns(
    { type: 'string', description: "Prometheus' text exposition format (version 0.0.4)" },
    {
      contentType: 'text/plain',
      example:
        '# HELP rcflow_session_transitions_total Session transitions by from and to state\n# TYPE rcflow_session_transitions_total counter\nrcflow_session_transitions_total{from="validating",to="awaiting_consent"} 3\n',
    },
  )
  // Public to the global guard (METRICS_TOKEN is no API key), but MetricsGuard answers these.
  @ApiErrors(401, 403)
  @ApiOperation({
    summary: "This API process' metrics in Prometheus' text format",
    description:
      'Needs an API key with admin.read over all collections, or `Authorization: Bearer <METRICS_TOKEN>` when METRICS_TOKEN is set ' +
      '(for Prometheus). Sessions, refusals, queue depths, outbox lag, connected agents, and the process itself; README "Metrics and logs".',
  })
  async metrics(@Res() res: Response): Promise<void> {
    const { contentType, body } = await renderMetrics();
    res.status(200).type(contentType).send(body);
  }
}
