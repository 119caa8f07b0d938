import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import { Public } from './auth/auth.guard';
import { RateBudgeted } from './edge/rate-limits';
import { ApiReturns } from './common/api-docs';
import * as S from './openapi-schemas';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(private readonly dataSource: DataSource) {}

  /** Unauthenticated on purpose, for load balancers; it reveals nothing but liveness. */
  @Get()
  @Public()
  @RateBudgeted('health')
  @ApiOperation({ summary: 'Liveness and database reachability' })
  @ApiReturns(S.healthView)
  async health() {
    await this.dataSource.query('SELECT 1');
    return { status: 'ok' };
  }
}
