/* version.h - the trainer's version, printed by --version and in reports. */
#ifndef TRAINER_VERSION_H
#define TRAINER_VERSION_H

#define TRAINER_VERSION "0.1.0"

#endif
