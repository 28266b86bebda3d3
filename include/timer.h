/* timer.h - wall-clock seconds from a monotonic clock, for rates and ETAs. */
#ifndef TRAINER_TIMER_H
#define TRAINER_TIMER_H

double timer_now(void);

#endif
