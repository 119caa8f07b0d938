import { DynamicModule, Global, Module } from '@nestjs/common';
import { RCFLOW_CONFIG, RcflowConfig } from './config';

/** Provides the already-validated configuration to every module. */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: RcflowConfig): DynamicModule {
    return { module: ConfigModule, providers: [{ provide: RCFLOW_CONFIG, useValue: config }], exports: [RCFLOW_CONFIG] };
  }
}
