/*
 * rtos_config.h - compile-time sizes of the firmware kernel (firmware/kernel/rtos.c), FreeRTOS
 * FreeRTOSConfig.h style: every knob has a default here, a port or build may override it with
 * -D, and impossible values stop the build with #error. Nothing is sized at run time (no heap).
 */
#ifndef RTOS_CONFIG_H
#define RTOS_CONFIG_H

#ifndef RTOS_CFG_MAX_TASKS
#define RTOS_CFG_MAX_TASKS 8 /* static tasks registered with rtos_task_add() */
#endif
#ifndef RTOS_CFG_MAX_TIMERS
#define RTOS_CFG_MAX_TIMERS 8 /* software timers registered with rtos_timer_add() */
#endif
#ifndef RTOS_CFG_MAX_PRIO
#define RTOS_CFG_MAX_PRIO 8 /* priorities 0 (lowest) .. RTOS_CFG_MAX_PRIO-1 */
#endif

#if RTOS_CFG_MAX_TASKS < 1 || RTOS_CFG_MAX_TASKS > 32
#error "RTOS_CFG_MAX_TASKS must be 1..32"
#endif
#if RTOS_CFG_MAX_TIMERS < 1 || RTOS_CFG_MAX_TIMERS > 64
#error "RTOS_CFG_MAX_TIMERS must be 1..64"
#endif
#if RTOS_CFG_MAX_PRIO < 2 || RTOS_CFG_MAX_PRIO > 256
#error "RTOS_CFG_MAX_PRIO must be 2..256"
#endif

#endif
