/*
 * fw_config.h - compile-time sizes and time constants of the card firmware (fw.c), with defaults
 * a port or build may override with -D, checked by #error. Static allocation only: these fix the
 * size of struct fw.
 */
#ifndef FW_CONFIG_H
#define FW_CONFIG_H

#include "abi_board.h"

#ifndef FW_CFG_N_QUEUES
#define FW_CFG_N_QUEUES 4 /* host command rings; ring 0 has the highest priority */
#endif
#ifndef FW_CFG_PENDING
#define FW_CFG_PENDING 16 /* decoded commands waiting to start, per host ring */
#endif
#ifndef FW_CFG_DMA_PENDING
#define FW_CFG_DMA_PENDING 16 /* DMA fills queued for a free channel */
#endif
#ifndef FW_CFG_CU_TIMEOUT_NS
#define FW_CFG_CU_TIMEOUT_NS 100000000ull /* 100 ms default hang timeout (header field overrides) */
#endif
#ifndef FW_CFG_WDOG_PERIOD_NS
#define FW_CFG_WDOG_PERIOD_NS 500000ull /* watchdog scan period, 0.5 ms */
#endif
#ifndef FW_CFG_HEARTBEAT_DIV
#define FW_CFG_HEARTBEAT_DIV 2 /* heartbeat every N watchdog periods */
#endif
#ifndef FW_CFG_CMDQ_BATCH
#define FW_CFG_CMDQ_BATCH 8 /* commands taken from one ring per command-queue task run */
#endif

#if FW_CFG_N_QUEUES < 1 || FW_CFG_N_QUEUES > 16
#error "FW_CFG_N_QUEUES must be 1..16"
#endif
#if FW_CFG_PENDING < 1 || FW_CFG_PENDING > 1024
#error "FW_CFG_PENDING must be 1..1024"
#endif
#if FW_CFG_DMA_PENDING < 1 || FW_CFG_DMA_PENDING > 1024
#error "FW_CFG_DMA_PENDING must be 1..1024"
#endif
#if FW_CFG_HEARTBEAT_DIV < 1
#error "FW_CFG_HEARTBEAT_DIV must be >= 1"
#endif

#endif
